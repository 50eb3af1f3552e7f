import { describe, expect, it } from "vitest";
import {
  parseMacApplications,
  parseTabSeparatedPackages,
  parseWindowsUninstallKeys,
} from "../../../src/telemetry/installed-software.ts";

// The shape `reg query ... /s` prints (four-space separators, CRLF), trimmed to what matters.
const REG_OUTPUT = [
  "",
  "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\7-Zip",
  "    DisplayName    REG_SZ    7-Zip 23.01 (x64)",
  "    DisplayVersion    REG_SZ    23.01",
  "    Publisher    REG_SZ    Igor Pavlov",
  "    Comments    REG_SZ    ",
  "",
  "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\{90160000-008C-0000-1000-0000000FF1CE}",
  "    DisplayName    REG_SZ    Office 16 Click-to-Run Extensibility Component",
  "    DisplayVersion    REG_SZ    16.0.17328.20000",
  "    SystemComponent    REG_DWORD    0x1",
  "",
  "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\KB5034441",
  "    InstallDate    REG_SZ    20240110",
  "",
  "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\Mozilla Firefox 121.0 (x64 en-US)",
  "    DisplayName    REG_SZ    Mozilla Firefox (x64 en-US)",
  "    DisplayVersion    REG_SZ    121.0",
  "    SystemComponent    REG_DWORD    0x0",
  "",
].join("\r\n");

describe("installed software, from each platform's own records", () => {
  it("reads Windows' Uninstall keys: named programs only, system components hidden as Windows hides them", () => {
    expect(parseWindowsUninstallKeys(REG_OUTPUT)).toEqual([
      { name: "7-Zip 23.01 (x64)", version: "23.01" },
      { name: "Mozilla Firefox (x64 en-US)", version: "121.0" },
    ]);
  });

  it("reads macOS' application list, and refuses output that is not one", () => {
    const json = JSON.stringify({
      SPApplicationsDataType: [
        { _name: "Safari", version: "17.2", path: "/Applications/Safari.app" },
        { _name: "Helper" },
        { version: "1" },
        { _name: "Safari", version: "17.2" },
      ],
    });
    expect(parseMacApplications(json)).toEqual([
      { name: "Helper", version: "" },
      { name: "Safari", version: "17.2" },
    ]);
    expect(() => parseMacApplications("{}")).toThrow(/no SPApplicationsDataType/);
  });

  it("reads dpkg and rpm lists the same way, sorted and without duplicates", () => {
    expect(
      parseTabSeparatedPackages("zlib1g\t1:1.2.13\nbash\t5.2.15-2\n\nbash\t5.2.15-2\nnot a package line\n"),
    ).toEqual([
      { name: "bash", version: "5.2.15-2" },
      { name: "zlib1g", version: "1:1.2.13" },
    ]);
  });
});
