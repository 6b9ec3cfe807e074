"""Thin Prefect tasks over the governance core: load inputs, call one core function, write rows."""
