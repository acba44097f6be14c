"""pytest plugin (filled in by the emulator work)."""
