"""RedfishMachine: one server, powered, booted and installed through its BMC (a dynamic provider).

All Redfish traffic goes through the `sushy` client. TLS is always verified, against the CA bundle
the stack passes (a site's own CA; the lab's CA in the lab): there is no "verify=False" path.

- create: refuse known default credentials; read the inventory and check it against the design's
  platform; insert the install media (and the node's seed ISO, when there is one); power a running
  server off and wait for it; set a one-time boot override to the virtual CD; power on; wait for
  the power state with backoff and an overall deadline.
- update: re-provision only when the install media or the generation counter changes; otherwise
  converge what drifted (power, media) without a reset.
- delete: power off and eject.
- diff/read: ask the BMC, so a server powered off by hand or whose media was changed shows as drift
  in `preview` (diff) and in `refresh` (read).

How to reach the BMCs (username, password, CA, deadline, wave) is the provider's configuration, not
each server's inputs: the `Machines` pools are explicit provider instances whose inputs carry it,
and the engine hands it to `configure` (also for `delete`, from the state). A site's state then
holds the password once per pool, encrypted, and not once per server; a server's inputs are what
is its own. The local backend rewrites the whole checkpoint at every step, so bytes per server
are engine work at every step: the CA's PEM in each server's inputs and outputs alone was 1.2 KB
of its 5.6. Error messages carry the server's name and the BMC's reason, never the credentials.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)
from pulumi.runtime.rpc import UNKNOWN

# Factory credentials BMCs ship with (iDRAC, Supermicro, XClarity/IMM, OpenBMC, generic): a site
# that still has them has BMCs anyone on the OOB network can take over.
DEFAULT_CREDENTIALS = frozenset({
    ("root", "calvin"), ("ADMIN", "ADMIN"), ("USERID", "PASSW0RD"), ("root", "0penBmc"),
    ("admin", "admin"), ("root", "root"), ("admin", "password"), ("Administrator", "password"),
})
# The install image goes to a CD/DVD device, the seed ISO to a removable one. Devices are chosen by
# their MediaTypes, not their names, which differ by vendor (Cd/Floppy on the emulator, CD/
# RemovableDisk on iDRAC, 2/1 on iLO).
CD, REMOVABLE = "cd", "removable"
_MEDIA_TYPES = {CD: {"CD", "DVD"}, REMOVABLE: {"USBStick", "Floppy"}}
# The provider configuration's keys: the pools' inputs (stacks.components.machines).
CONNECTION = ("username", "password", "ca_pem", "deadline_s", "wave")
CONFIG_NAMESPACE = "bmc"
_SESSION_LIMIT: dict[str, threading.BoundedSemaphore] = {}
_SESSION_LOCK = threading.Lock()


class BmcError(Exception):
    """A BMC refused or failed; the message names the server and gives the BMC's reason."""


def _wave(key: str, size: int) -> threading.BoundedSemaphore:
    """At most `size` BMC sessions at once per rack: the engine runs many resources in parallel,
    and one provider process serves them all."""
    with _SESSION_LOCK:
        return _SESSION_LIMIT.setdefault(key, threading.BoundedSemaphore(max(size, 1)))


def _check_credentials(props: dict[str, Any]) -> str | None:
    if (props.get("username"), props.get("password")) in DEFAULT_CREDENTIALS or not props.get("password"):
        return (f"server {props.get('name')}: the BMC credentials are a vendor default (or empty); "
                "set a site password in the stack config (sovereign:bmcPassword) before provisioning")
    return None


class _Bmc:
    """One short sushy session to a server's BMC."""

    def __init__(self, props: dict[str, Any]):
        import sushy
        from sushy import auth

        self.props = props
        self.name = props["name"]
        self._ca = tempfile.NamedTemporaryFile("w", suffix=".pem")
        self._ca.write(props["ca_pem"])
        self._ca.flush()
        self.sushy = sushy
        # A Redfish session when the BMC offers one, else basic auth; closed explicitly in close():
        # iDRAC and iLO allow only a few sessions per BMC, and a leaked one holds its slot for minutes.
        self._auth = auth.SessionOrBasicAuth(props["username"], props["password"])
        try:
            self.root = sushy.Sushy(
                props["url"] + "/redfish/v1/", verify=self._ca.name,
                auth=self._auth,
                server_side_retries=2, server_side_retries_delay=1, read_timeout=30, connect_timeout=10,
            )
            self.system = self.root.get_system(props["system"])
        except Exception as exc:
            self.close()
            raise self.error("cannot connect", exc) from None
        # Read once per session: every request costs the BMC (the lab's emulator is one process
        # for the whole site, so requests per server bound how fast any client provisions), and
        # sushy's forced refresh of the system re-reads every device under it.
        self._devices: list[Any] | None = None
        self._media_changed = False

    def get(self, path: str) -> dict[str, Any]:
        document: dict[str, Any] = self.root._conn.get(path=path).json()
        return document

    def error(self, what: str, exc: BaseException) -> BmcError:
        reason = str(exc).replace(self.props.get("password") or "\0", "***")
        if "CERTIFICATE_VERIFY_FAILED" in reason:
            reason = "the BMC's TLS certificate is not signed by the configured CA (certificate verify failed)"
        elif type(exc).__name__ == "AccessError":
            reason = "the BMC refused the credentials (HTTP 401/403)"
        elif type(exc).__name__ == "ConnectionError":
            reason = f"the BMC does not answer ({reason.splitlines()[0][:200]})"
        return BmcError(f"server {self.name}: BMC {self.props['url']}: {what}: {reason}")

    def close(self) -> None:
        try:
            self._auth.close()
        except Exception:  # a BMC that went away took its session with it
            pass
        self._ca.close()

    def media(self) -> dict[str, str]:
        """Inserted image per device as the BMC reports it, from the system's VirtualMedia
        (Redfish 1.13+, OpenBMC) or else the manager's (iDRAC, iLO, XClarity)."""
        devices = self._media_devices()
        if self._media_changed:  # read back what this session inserted or ejected
            for device in devices:
                device.refresh(force=True)
            self._media_changed = False
        return {v.identity: (v.image or "") for v in devices if v.inserted}

    def _media_devices(self) -> list[Any]:
        if self._devices is None:
            try:
                self._devices = list(self.system.virtual_media.get_members())
            except self.sushy.exceptions.MissingAttributeError:
                self._devices = list(self.system.managers[0].virtual_media.get_members())
        return self._devices

    def insert(self, kind: str, url: str) -> None:
        for media in self._media_devices():
            types = {str(getattr(t, "value", t)) for t in (media.media_types or [])}
            if not types & _MEDIA_TYPES[kind] or (kind == REMOVABLE and types & _MEDIA_TYPES[CD]):
                continue
            if media.inserted and media.image == url:
                return
            if media.inserted:
                media.eject_media()
            media.insert_media(url, inserted=True, write_protected=True)
            self._media_changed = True
            return
        raise BmcError(f"server {self.name}: the BMC has no virtual media device for {kind} media "
                       f"({'/'.join(sorted(_MEDIA_TYPES[kind]))})")

    def eject_all(self) -> None:
        for media in self._media_devices():
            if media.inserted:
                media.eject_media()
                self._media_changed = True

    def power_at_connect(self) -> str:
        """The power state in the system document read when the session opened."""
        state = self.system.power_state
        return str(getattr(state, "value", state)) if state else "Unknown"

    def power(self) -> str:
        """The power state now: the system document alone, not the devices under it."""
        return str(self.get(self.system.path).get("PowerState") or "Unknown")

    def wait_power(self, state: str) -> str:
        """Poll with backoff until the power state is reached or the deadline passes, after the
        reset that asked for it (BMCs apply power changes seconds later; some take minutes)."""
        deadline = time.monotonic() + float(self.props.get("deadline_s", 300))
        delay = 1.0
        while True:
            time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            current = self.power()
            if current == state:
                return current
            if time.monotonic() >= deadline:
                raise BmcError(
                    f"server {self.name}: BMC {self.props['url']}: power state still {current}, "
                    f"not {state}, after the deadline of {self.props.get('deadline_s')} s"
                )
            delay = min(delay * 1.6, 5.0)


@contextmanager
def _session(props: dict[str, Any]) -> Iterator[_Bmc]:
    with _wave(f"{props['url']}#rack{props.get('rack')}", int(props.get("wave", 8))):
        bmc = _Bmc(props)
        try:
            yield bmc
        except BmcError:
            raise
        except Exception as exc:  # sushy's own errors, with the BMC's reason
            raise bmc.error("request failed", exc) from None
        finally:
            bmc.close()


def _observed(bmc: _Bmc, power: str | None = None) -> dict[str, Any]:
    return {"power_state": power or bmc.power(), "media": bmc.media()}


def _wanted_media(props: dict[str, Any]) -> dict[str, str]:
    wanted = {CD: props["image_url"]}
    if props.get("seed_url"):
        wanted[REMOVABLE] = props["seed_url"]
    return wanted


def _provision(props: dict[str, Any]) -> dict[str, Any]:
    from stacks.design.redfish_inventory import check_inventory, read_inventory

    refused = _check_credentials(props)
    if refused:
        raise BmcError(refused)
    with _session(props) as bmc:
        system = bmc.system
        inventory = read_inventory(lambda path: system.json if path == system.path else bmc.get(path), system.path)
        check_inventory(props["name"], inventory, gpu_model=props["gpu_model"], gpus=int(props["gpus"]))
        for kind, url in _wanted_media(props).items():
            bmc.insert(kind, url)
        if bmc.power_at_connect() != "Off":
            # Off and on again rather than a restart: every BMC reports Off after ForceOff (a warm
            # restart may never leave On, so its end cannot be seen), and iLO and some OpenBMC
            # builds take the one-time boot override only from a server that is off.
            system.reset_system(bmc.sushy.RESET_FORCE_OFF)
            bmc.wait_power("Off")
        system.set_system_boot_options(bmc.sushy.BOOT_SOURCE_TARGET_CD, enabled=bmc.sushy.BOOT_SOURCE_ENABLED_ONCE)
        system.reset_system(bmc.sushy.RESET_ON)
        power = bmc.wait_power("On")
        return {**_observed(bmc, power), "inventory": inventory.to_json(), "provisioned_generation": props["generation"]}


def _converge(props: dict[str, Any]) -> dict[str, Any]:
    """Put back what drifted (media, power) without reinstalling."""
    with _session(props) as bmc:
        for kind, url in _wanted_media(props).items():
            bmc.insert(kind, url)
        if bmc.power_at_connect() != "On":
            bmc.system.reset_system(bmc.sushy.RESET_ON)
            return _observed(bmc, bmc.wait_power("On"))
        return _observed(bmc)


_REPROVISION = ("image_url", "image_sha256", "seed_url", "seed_sha256", "generation")
_SERVER = ("name", "url", "system", "rack", "image_url", "image_sha256", "seed_url", "seed_sha256",
           "gpu_model", "gpus", "generation")


def _outputs(news: dict[str, Any], observed: dict[str, Any]) -> dict[str, Any]:
    """A server's state: its own inputs and what its BMC reported, never the connection."""
    return {**{k: news.get(k) for k in _SERVER}, **observed}


class RedfishMachineProvider(ResourceProvider):
    # It captures nothing secret, and an always-secret copy of it per server is re-encrypted at
    # every checkpoint the engine writes.
    serialize_as_secret_always = False

    # Set by `configure`, in the provider's process only. The program's instances carry no state:
    # the SDK (3.x serialize_provider) wraps the pickler's dict writer again for every resource it
    # pickles and never unwraps it, so pickling an instance dict walks a chain as long as the
    # dynamic resources made so far (RecursionError at 300 servers, 600 resources).
    connection: dict[str, Any]

    def configure(self, req: ConfigureRequest) -> None:
        self.connection = {key: req.config.get(f"{CONFIG_NAMESPACE}:{key}") for key in CONNECTION}

    def _connection(self) -> dict[str, Any]:
        return {k: v for k, v in getattr(self, "connection", {}).items() if v is not None}

    def _props(self, props: dict[str, Any]) -> dict[str, Any]:
        return {**props, **self._connection()}

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        if not self._connection().get("username"):
            failures.append(CheckFailure("username", f"server {news.get('name')}: no BMC connection settings: a "
                                         "RedfishMachine's provider must be one of its Machines' pools"))
        refused = _check_credentials(self._props(news))
        if refused:
            failures.append(CheckFailure("password", refused))
        if not str(news.get("url", "")).startswith("https://"):
            failures.append(CheckFailure("url", f"server {news.get('name')}: the BMC URL must be https://"))
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = _provision(self._props(props))
        return CreateResult(f"{props['url']}{props['system']}", _outputs(props, outs))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in _REPROVISION if olds.get(k) != news.get(k)]
        changed += [k for k in ("url", "system", "gpu_model", "gpus", "rack") if olds.get(k) != news.get(k)]
        if not changed and not any(isinstance(v, str) and v == UNKNOWN for v in news.values()):
            # Drift: what the BMC says now against what the last `up` left. A BMC that cannot be
            # asked is drift too (unknown is not "same"): `up` then tries, and fails for this
            # server alone with the BMC's reason, instead of a diff error stopping the whole run.
            try:
                with _session(self._props(news)) as bmc:
                    observed = _observed(bmc)
            except BmcError as exc:
                pulumi.log.warn(str(exc))
                observed = {"power_state": "Unknown", "media": {}}
            if observed["power_state"] != "On":
                changed.append("power_state")
            if not set(_wanted_media(news).values()) <= set(observed["media"].values()):
                changed.append("media")
        return DiffResult(changes=bool(changed), replaces=[], stables=["name", "url", "system"],
                          delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if any(olds.get(k) != news.get(k) for k in _REPROVISION):
            return UpdateResult(_outputs(news, _provision(self._props(news))))
        return UpdateResult(_outputs(news, {**_converge(self._props(news)), "inventory": olds.get("inventory"),
                                            "provisioned_generation": olds.get("provisioned_generation")}))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with _session(self._props(props)) as bmc:
            kept = {k: v for k, v in props.items() if k not in CONNECTION}  # a state from before the pools held them
            return ReadResult(id_, {**kept, **_observed(bmc)})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with _session(self._props(props)) as bmc:
            if bmc.power_at_connect() != "Off":
                bmc.system.reset_system(bmc.sushy.RESET_FORCE_OFF)
                bmc.wait_power("Off")
            bmc.eject_all()


class RedfishMachine(Resource):
    """A server provisioned through its BMC. `props` are the server's own inputs (`_SERVER`); its
    provider must be a pool configured with the connection (see the module docstring)."""

    power_state: pulumi.Output[str]
    media: pulumi.Output[dict[str, str]]
    inventory: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        outputs = {"power_state": None, "media": None, "inventory": None, "provisioned_generation": None}
        super().__init__(RedfishMachineProvider(), name, {**props, **outputs}, opts)
