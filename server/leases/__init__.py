"""Leases on keys with fencing tokens: the manager of waiting and expiry, its store and statements (leases.sql)."""
