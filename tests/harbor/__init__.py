"""Tests of hud.harbor: Harbor tasks in and out."""
