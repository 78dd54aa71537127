"""The official SDK as the reference the add-on is held to."""
