"""Cost models: scikit-learn estimators that turn measurements into costs a search can use."""
