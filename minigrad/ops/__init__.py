"""The ops: one module per family, each op a Function with its forward, its backward and
the derivative in its docstring. Use them through :mod:`minigrad.functional`."""
