"""The admin/compliance API (issue 5 §6): FastAPI, role-based access, TOTP for privileged actions, every
read of participant data audited. ``create_app`` builds it from its ports; ``bootstrap`` wires the real ones."""
