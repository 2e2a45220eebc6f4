"""Cheap, torch-free checks of uploaded files, run in the API process before storing them."""
