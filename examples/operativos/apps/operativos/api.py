from datetime import date

from ninja import Field, ModelSchema, Router, Schema

from .models import Operativo

router = Router(tags=["operativos"])

LIST_LIMIT = 100


class OperativoOut(ModelSchema):
    class Meta:
        model = Operativo
        fields = ("id", "nombre", "fecha", "creado")


class OperativoIn(Schema):
    nombre: str = Field(min_length=1, max_length=200)
    fecha: date


@router.get("/", response=list[OperativoOut])
def list_operativos(request):
    """List the newest operativos first, at most LIST_LIMIT of them."""
    # list() runs the query here, so a database error reaches the API's handler as itself and not wrapped in a
    # pydantic ValidationError raised while the response is serialized.
    return list(Operativo.objects.order_by("-creado", "-id")[:LIST_LIMIT])


# NOTE: this endpoint requires no authentication, so anyone who reaches the API can create operativos.
@router.post("/", response={201: OperativoOut})
def create_operativo(request, payload: OperativoIn):
    operativo = Operativo.objects.create(nombre=payload.nombre, fecha=payload.fecha)
    return 201, operativo
