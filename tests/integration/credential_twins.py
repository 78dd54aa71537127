"""The STS and metadata twins next to an AddonEnv, with one account of each role type stored in the splunkd double.

    with AddonEnv() as env, CredentialTwins(env, lifetime=60) as twins:
        env.start_input("prod", account=twins.ECS_ACCOUNT)

The SLS emulator verifies the temporary keys these twins issue (they share the default issuer key). The add-on
reaches the metadata twin through TA_ALIYUN_SLS_IMDS_URL, which the runner adds to every process it launches.
"""

from __future__ import annotations

import collections
import re
from typing import Dict, List, Optional

from tests.emulators.imds import ImdsEmulator
from tests.emulators.sts import Role, StsEmulator

from .harness import AddonEnv

ROLE_ARN = "acs:ram::123456789012:role/sls-reader"
EXTERNAL_ID = "ext-Integration-5fQ2Zr"
BASE_KEY, BASE_SECRET = "LTAI5tStsBaseUser", "sts-base-secret-4d3c2b1a9e"
IMDS_URL_ENV = "TA_ALIYUN_SLS_IMDS_URL"
ACCOUNT_CONF = "ta_aliyun_sls_account"


class CredentialTwins:
    """Starts the twins and stores the accounts ``ecs_role``, ``role_key`` (AssumeRole with a base AccessKey and an
    ExternalId) and ``role_ecs`` (AssumeRole based on the instance's role).

    Arguments:
        env: The started AddonEnv.
        lifetime: Seconds every temporary credential lives (STS and the instance role); None: as asked (3600) for
            STS and 6 hours for the instance role.
        hardened: The metadata twin refuses GETs without a token.
    """

    ECS_ACCOUNT = "ecs_role"
    ROLE_KEY_ACCOUNT = "role_key"
    ROLE_ECS_ACCOUNT = "role_ecs"
    ACCOUNTS = (ECS_ACCOUNT, ROLE_KEY_ACCOUNT, ROLE_ECS_ACCOUNT)

    def __init__(self, env: AddonEnv, lifetime: Optional[float] = None, hardened: bool = True) -> None:
        self.env = env
        self.imds = ImdsEmulator("sls-forwarder-role", hardened=hardened, lifetime=lifetime or 21600)
        self.sts = StsEmulator({BASE_KEY: BASE_SECRET},
                               [Role(ROLE_ARN, trusted=frozenset({BASE_KEY, self.imds.role_arn}),
                                     external_id=EXTERNAL_ID)], lifetime=lifetime)

    def __enter__(self) -> "CredentialTwins":
        self.imds.start()
        self.sts.start()
        self.env.runner.extra_env[IMDS_URL_ENV] = self.imds.url
        splunkd = self.env.splunkd
        splunkd.set_stanza(ACCOUNT_CONF, self.ECS_ACCOUNT, {"credential_type": "ecs_ram_role", "ecs_role_name": ""})
        self.store_role_account(self.ROLE_KEY_ACCOUNT, external_id=EXTERNAL_ID, with_key=True)
        self.store_role_account(self.ROLE_ECS_ACCOUNT, external_id=EXTERNAL_ID, with_key=False)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.env.runner.extra_env.pop(IMDS_URL_ENV, None)
        self.sts.stop()
        self.imds.stop()

    def store_role_account(self, name: str, *, external_id: str, with_key: bool, role_arn: str = ROLE_ARN,
                           duration_seconds: int = 3600) -> None:
        fields = {"credential_type": "assume_role", "role_arn": role_arn, "sts_endpoint": self.sts.endpoint,
                  "duration_seconds": str(duration_seconds), "role_session_name": ""}
        secrets = {"external_id": external_id}
        if with_key:
            fields["access_key_id"] = BASE_KEY
            secrets["access_key_secret"] = BASE_SECRET
        self.env.splunkd.store_encrypted(ACCOUNT_CONF, name, secrets, fields)

    def secrets(self) -> set:
        """What must never appear in the add-on's output: the base secret, the ExternalId, every issued key's secret
        and token."""
        issued = self.imds.issuer.issued + self.sts.issuer.issued
        return {BASE_SECRET, EXTERNAL_ID} | {key.access_key_secret for key in issued} | {
            key.security_token for key in issued}


ACCOUNT_TYPES = {"ecs_role": "ecs_ram_role", "role_key": "assume_role with an AccessKey and ExternalId",
                 "role_ecs": "assume_role based on the ECS role"}


def keys_by_logstore(env: AddonEnv) -> Dict[str, List[str]]:
    """{logstore: [AccessKey ids that signed its accepted requests, in order]} from the SLS emulator's log."""
    used = collections.defaultdict(list)
    for record in env.sls.request_log:
        match = re.match(r"/logstores/([^/]+)", record.path)
        if match and record.access_key_id:
            used[match.group(1)].append(record.access_key_id)
    return used
