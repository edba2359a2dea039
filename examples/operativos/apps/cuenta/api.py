from ninja import Router, Schema

router = Router(tags=["cuenta"])


class CuentaOut(Schema):
    authenticated: bool
    username: str | None


@router.get("/", response=CuentaOut)
def current_account(request):
    """Return whether the request's user is logged in, and the username when it is."""
    user = request.user
    if not user.is_authenticated:
        return {"authenticated": False, "username": None}
    return {"authenticated": True, "username": user.get_username()}
