"""Output formats: each module turns a list of Reports into text (the registry is in espdiag/output.py).

layout.py (the human report's lines), safe.py (escaping what came from a log or a file name) and
colour.py (whether to colour) are shared by the formats.
"""
