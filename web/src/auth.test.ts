import { beforeEach, describe, expect, it } from "vitest";
import { authHeaders, initToken, resetTokenCache, wsUrl } from "./auth";

describe("token", () => {
  beforeEach(() => resetTokenCache());

  it("keeps ?token= in sessionStorage, strips it from the URL, and sends it", () => {
    window.history.replaceState(null, "", "/?q=a&token=s3cret");
    initToken();
    expect(sessionStorage.getItem("reef.token")).toBe("s3cret");
    expect(window.location.search).toBe("?q=a");
    expect(authHeaders()).toEqual({ Authorization: "Bearer s3cret" });
    expect(wsUrl()).toBe(`ws://${window.location.host}/ws?token=s3cret`);
    resetTokenCache();
    expect(authHeaders()).toEqual({ Authorization: "Bearer s3cret" }); // read back from storage
  });

  it("sends nothing without a token", () => {
    window.history.replaceState(null, "", "/");
    initToken();
    expect(authHeaders()).toEqual({});
    expect(wsUrl()).toBe(`ws://${window.location.host}/ws`);
  });
});
