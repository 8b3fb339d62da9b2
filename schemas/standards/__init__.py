"""Limits of the Chinese environmental standards and WHO bloom levels, as data tables.

Every number here is from docs/standards.md, which names the source it was read in;
each table cites its clause. Items that file marks UNVERIFIED are not hard-coded: they are
configuration, marked as such where they are used.
"""
