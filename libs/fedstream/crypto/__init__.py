"""Cryptography for protected updates (homomorphic encryption: ``fedstream.crypto.he``)."""
