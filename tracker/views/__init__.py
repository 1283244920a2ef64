"""Blueprints, one per audience; each view is thin glue over the domain modules."""
