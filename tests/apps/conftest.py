# The cookiecutter-shaped app's own tests run in its own pytest (tests/unit/compat/
# test_cookiecutter.py starts it), with its own rootdir and configuration, on pydantic 1.
collect_ignore = ["cookiecutter"]
