"""HEC delivery, modelled on kafka-connect-splunk's hecclient: one small class per concern."""
