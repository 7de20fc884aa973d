import sys

# Importing generated/ must not leave __pycache__ there: the directory is compared byte for
# byte with what `make derive` writes.
sys.dont_write_bytecode = True
