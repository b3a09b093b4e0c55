# cffi's setuptools integration needs the `cffi_modules` keyword, which has no pyproject equivalent.
from setuptools import setup

setup(cffi_modules=["src/_albatross_cffi/build_native.py:ffibuilder"])
