"""Import from PyTorch and Keras: an existing model as a spec (cnndsl/interop/keras_import.py for Keras 3)."""
