"""Import from PyTorch and Keras: an existing model as a spec (docs/import.md).

torch_import.py traces a PyTorch module (torch.fx) and recovers its blocks; keras_import.py reads a Keras 3
model's config as data; emit.py holds the AST-building helpers an importer may share. Imports the core and
`saved`; torch only inside this package, never through `import cnndsl` or `check`.
"""
