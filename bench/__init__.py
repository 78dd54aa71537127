"""Throughput benchmark of TA-aliyun-sls: the built add-on against the official SDK's consumer (issue 7).

Entry points: ``python -m bench.run [--quick]`` (normally through ``python3 build.py bench``) and
``python -m bench.micro`` (decoder and shaper alone). See bench/README.md.
"""
