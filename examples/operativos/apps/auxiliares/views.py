"""Plain Django views shared by the project."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt


# The view only returns 404, so exempting it from CSRF lets a POST to an unknown path get the JSON 404
# instead of Django's HTML 403 page.
@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Return a JSON 404 for any /api/ path that no API route matches."""
    return JsonResponse({"detail": "Not Found"}, status=404)
