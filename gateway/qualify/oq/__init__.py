"""Operational qualification: protocols as data, run against the simulators, written as evidence."""
