"""Corpus building: obtain public sources, read genomes and annotations, write prompt-answer splits."""
