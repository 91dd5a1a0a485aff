"""The portal: login (password, forced change, TOTP), the launcher, logout."""
