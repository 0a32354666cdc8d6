"""Exporting Gold Digger models to other tools' formats (BioImage.IO)."""
