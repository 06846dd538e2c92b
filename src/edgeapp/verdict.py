"""The board's health in one word and a few words of why: the same verdict for edgeapp-diag's last
line and the page's header (GET /api/status's `health`). Standard library only, imports nothing."""


def verdict(state, failed_models=0, config_error=None, faces=None):
    """(healthy, reason). state: READY or what the service is instead (STARTING, NOT-READY, HUNG,
    DOWN, RESTARTING...); failed_models: how many failed to load; faces: /api/status's `faces`
    (edgeapp.facedb.FaceGallery.status()), or None."""
    face_db_error, to_register = _face_db(faces)
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


def _face_db(faces):
    """(the database cannot be opened, people to register again): both only while a face model
    serves (without one the database is not used)."""
    if not isinstance(faces, dict) or not faces.get("model"):
        return False, 0
    other = faces.get("other_models") if isinstance(faces.get("other_models"), dict) else {}
    names = other.get("users") if isinstance(other.get("users"), list) else []
    return bool(faces.get("error")), other.get("users_total") or len(names)


def word(healthy):
    return "HEALTHY" if healthy else "UNHEALTHY"
