"""The board's health in one word and a few words of why: the same verdict for edgeapp-diag's last
line and the page's header (GET /api/status's `health`). Standard library only, imports nothing."""


def verdict(state, failed_models=0, config_error=None, face_db_error=False, to_register=0):
    """(healthy, reason). state: READY or what the service is instead (STARTING, NOT-READY, HUNG,
    DOWN, RESTARTING...); failed_models: how many failed to load; face_db_error: a face model serves
    but its database cannot be opened; to_register: people whose faces belong to another face model."""
    if state != "READY":
        return False, "service %s" % state.lower().replace("-", " ")
    if failed_models:
        return False, "%d model(s) failed to load" % failed_models
    if config_error:
        return False, "the config has an error"
    if face_db_error:
        return False, "the face database cannot be opened"
    if to_register:
        # Everyone else is recognised: healthy, but someone has to act (register or delete them).
        return True, "service ready, every model ready; WARNING %d %s to register again" % (
            to_register, "person" if to_register == 1 else "people")
    return True, "service ready, every model ready"


def word(healthy):
    return "HEALTHY" if healthy else "UNHEALTHY"
