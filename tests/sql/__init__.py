"""Tests of the SQL adapter itself: schema, round trips, exact money, races, failures."""
