"""TA-aliyun-sls core: consume Alibaba Cloud SLS consumer groups and deliver to Splunk."""
