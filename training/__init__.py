"""Training: closed tickets in, a verified model artifact out (scikit-learn lives only here)."""
