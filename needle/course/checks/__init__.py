"""Per-chapter checks: each chNN_*.py registers its exercises (`@exercise_check`) next to the check functions."""
