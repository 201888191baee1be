"""Tests of the FHIR SDC export, extraction and FHIRPath interoperability."""
