"""The Splunk side: event shaping, the XML stream sink, HEC delivery, splunkd REST."""
