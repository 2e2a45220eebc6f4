"""Helpers every test suite may use (ports, ...), imported as `tests.support.*`: tests never
import from each other's conftest modules for these."""
