# PlatformIO: diagnose a failed upload automatically.
# Save next to platformio.ini and add:  extra_scripts = post:espdiag_upload.py
Import("env")  # noqa: F821 (SCons injects it)

if "espdiag" not in env.get("UPLOADCMD", ""):  # noqa: F821
    env.Replace(UPLOADCMD="espdiag run -- " + env["UPLOADCMD"])  # noqa: F821
