"""Human values: questionnaires, social norms, safety under pressure and dilemmas."""
