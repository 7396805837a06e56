"""Third-party gRPC client (Debian python3-grpcio): streams a reasoning request, checks health and
lists services through reflection. Prints one JSON object. Usage: grpc_client.py PORT STUBS_DIR IMAGE"""
import json
import sys

port, stubs, image_path = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, stubs)

import grpc  # noqa: E402
from healthproto import health_pb2, health_pb2_grpc  # noqa: E402
from pixelreasoner.v1 import reasoning_pb2, reasoning_pb2_grpc  # noqa: E402
from reflproto import reflection_pb2, reflection_pb2_grpc  # noqa: E402

channel = grpc.insecure_channel(f"127.0.0.1:{port}")
stub = reasoning_pb2_grpc.PixelReasonerStub(channel)
with open(image_path, "rb") as f:
    image = f.read()
call = '<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.2, 0.2, 0.5, 0.5], "target_image": 1}}\n</tool_call>'
request = reasoning_pb2.ReasoningRequest(
    messages=[
        reasoning_pb2.Message(role="user", content=[reasoning_pb2.ContentPart(image=reasoning_pb2.Image(data=image)), reasoning_pb2.ContentPart(text="What is there?")]),
        reasoning_pb2.Message(role="assistant", content=[reasoning_pb2.ContentPart(text=call)]),
    ],
    sampling=reasoning_pb2.SamplingOptions(temperature=0, max_tokens=5),
)
steps = []
box = None
for step in stub.StreamReasoning(request, timeout=60):
    kind = step.WhichOneof("step")
    steps.append(kind)
    if kind == "tool_result":
        b = step.tool_result.box
        box = [b.x1, b.y1, b.x2, b.y2]

health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="pixelreasoner.v1.PixelReasoner"), timeout=10)

reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
responses = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
services = sorted(s.name for r in responses for s in r.list_services_response.service)

print(json.dumps({"steps": steps, "box": box, "health": health_pb2.HealthCheckResponse.ServingStatus.Name(health.status), "services": services}))
