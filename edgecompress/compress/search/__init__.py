"""Budgeted search over recipes: Optuna proposes, an executor (local or Ray) runs trials."""
