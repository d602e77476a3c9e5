"""The language server (`cnndsl lsp`): diagnostics, hover, inlay hints, completion and more for .cnn files.

It imports the core only, never torch (a test checks `sys.modules`); pygls comes with the `lsp` extra.
"""
