"""``espdiag serve``: a paste page and a JSON API over the same diagnosis as the command line.

``app.py`` is a plain WSGI application (standard library only), ``page.py`` renders its HTML and
``static/`` holds its one stylesheet and script. A production WSGI server (waitress, the ``serve``
extra) runs it; the app keeps no state, so it scales by adding processes.
"""
