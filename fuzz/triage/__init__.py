"""Triage: what a finding is. Crash reports read from what a dying bus printed, the table of
documented bus behaviour with the evidence each excuse needs, and the known behaviours of
released bus versions."""
