"""A gRPC server and client in Python (grpcio) for Reef's capture: unary calls (one
gzip-compressed), an error status with a message needing percent-encoding, server
streaming, client streaming and bidirectional streaming, on one channel.

    python3 demo.py serve PORT      # until killed
    python3 demo.py call PORT
"""
import sys
from concurrent import futures

import grpc

import demo_pb2
import demo_pb2_grpc


class Echo(demo_pb2_grpc.EchoServicer):
    def Say(self, request, context):
        return demo_pb2.Msg(text="hello " + request.text, n=request.n + 1,
                            kind=demo_pb2.QUIET, score=0.5)

    def Fail(self, request, context):
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing: ✓ 100%")

    def Countdown(self, request, context):
        for i in range(request.n, 0, -1):
            yield demo_pb2.Msg(text="tick", n=i)

    def Gather(self, request_iterator, context):
        return demo_pb2.Count(n=sum(1 for _ in request_iterator))

    def Chat(self, request_iterator, context):
        for m in request_iterator:
            yield demo_pb2.Msg(text=m.text.upper(), n=m.n)


def serve(port):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    demo_pb2_grpc.add_EchoServicer_to_server(Echo(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def call(port):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = demo_pb2_grpc.EchoStub(ch)
        full = demo_pb2.Msg(
            text="reef", n=41, tags=["a", "b"], kind=demo_pb2.LOUD,
            attrs={"x": 1, "y": -2}, inner=demo_pb2.Inner(blob=b"\x00\xff", ok=True),
            score=2.25)
        print(stub.Say(full))
        print(stub.Say(demo_pb2.Msg(text="zipped " * 20), compression=grpc.Compression.Gzip))
        try:
            stub.Fail(demo_pb2.Msg(text="x"))
        except grpc.RpcError as e:
            print("Fail:", e.code(), e.details())
        print([m.n for m in stub.Countdown(demo_pb2.Count(n=5))])
        print(stub.Gather(iter([demo_pb2.Msg(text=str(i)) for i in range(3)])))
        print([m.text for m in stub.Chat(iter([demo_pb2.Msg(text="hi", n=1), demo_pb2.Msg(text="there", n=2)]))])


if __name__ == "__main__":
    {"serve": serve, "call": call}[sys.argv[1]](int(sys.argv[2]))
