"""Evaluation: factual knowledge of trained models (facts.py); answer quality (qa, webnlg) from other packages."""
