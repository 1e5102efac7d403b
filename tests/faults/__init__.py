"""Fault injection: each way a hostile user or a dying process can break simeval, as a test."""
