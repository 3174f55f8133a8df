from __future__ import annotations

from espdiag.main import main

raise SystemExit(main())
