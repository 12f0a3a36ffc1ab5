#!/usr/bin/python3
"""test_builtin_hooks.py - structural checks of the builtin PowerShell hooks shipped with the
install (hooks/builtin/*.ps1). There is no PowerShell on the build host, so these checks are
PowerShell-free: the four hooks exist, are ASCII, start with a comment naming the file, use
Set-StrictMode and stop on errors, have balanced (), {} and [] outside strings and comments,
never run Invoke-Expression, never print the session token, and the storage hooks use
-LiteralPath for paths and keep the credentials out of files and command lines. Running them
needs a real Windows host (docs/scripts.md, "Checking the storage hooks").

Usage: test_builtin_hooks.py [unittest options]
"""
import os
import re
import unittest

HOOKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "hooks", "builtin")
NAMES = ["load_persistent_profile.ps1", "save_persistent_profile.ps1", "map_storage.ps1",
         "unmap_storage.ps1"]


def code_only(text):
    """The text with comments and string contents blanked (a small PowerShell lexer)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("<#", i):
            j = text.find("#>", i + 2)
            i = n if j < 0 else j + 2
        elif c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c == "'":
            j = i + 1
            while j < n:
                if text[j] == "'" and j + 1 < n and text[j + 1] == "'":
                    j += 2
                elif text[j] == "'":
                    break
                else:
                    j += 1
            if j >= n:
                raise AssertionError(f"unterminated single-quoted string at {i}")
            out.append("''")
            i = j + 1
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "`" else 1
            if j >= n:
                raise AssertionError(f"unterminated double-quoted string at {i}")
            out.append('""')
            i = j + 1
        elif c == "`":
            out.append(text[i:i + 2])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class BuiltinHooks(unittest.TestCase):
    def read(self, name):
        with open(os.path.join(HOOKS, name), "rb") as f:
            data = f.read()
        self.assertTrue(all(b < 128 for b in data), f"{name} is not ASCII")
        return data.decode("ascii")

    def test_structure(self):
        for name in NAMES:
            with self.subTest(name=name):
                text = self.read(name)
                self.assertTrue(text.startswith(f"# {name} - "), "no header comment")
                code = code_only(text)
                self.assertIn("Set-StrictMode -Version 2.0", code)
                self.assertIn("$ErrorActionPreference = ''", code)  # 'Stop', blanked
                self.assertRegex(text, r"\$ErrorActionPreference = 'Stop'")
                stack = []
                pairs = {")": "(", "}": "{", "]": "["}
                for k, ch in enumerate(code):
                    if ch in "({[":
                        stack.append((ch, k))
                    elif ch in ")}]":
                        self.assertTrue(stack and stack[-1][0] == pairs[ch],
                                        f"unbalanced {ch!r} near {code[max(0, k - 60):k]!r}")
                        stack.pop()
                self.assertEqual(stack, [], "unclosed brackets")
                self.assertNotRegex(code, r"(?i)\b(invoke-expression|iex)\b")
                # the session token is never printed
                self.assertNotRegex(text, r"(?im)^[^#\n]*(write-(output|host|error|verbose)|echo"
                                          r"|writeline)[^\n]*\$(jwt_token|jwt)\b")
                self.assertRegex(code, r"\bexit 0\b")

    def test_storage_hooks(self):
        for name in ("map_storage.ps1", "unmap_storage.ps1"):
            with self.subTest(name=name):
                code = code_only(self.read(name))
                lines = [ln for ln in code.splitlines() if "New-Item" not in ln]
                self.assertFalse([ln for ln in lines if re.search(r"(?<![A-Za-z])-Path \$", ln)],
                                 "paths go through -LiteralPath")
                self.assertIn("Test-SafeName $target", code)
        code = code_only(self.read("map_storage.ps1"))
        # credentials only in rclone's environment, never in a config file or its command line
        self.assertIn("SetEnvironmentVariable($prefix", code)
        self.assertNotRegex(code, r"(?i)rclone\.conf|--config")
        self.assertIn("FileSecurity=", self.read("map_storage.ps1"))
        # the session token is removed from the environment rclone inherits
        self.assertIn("KASM_JWT_TOKEN", self.read("map_storage.ps1"))
        self.assertIn("$proc.ProcessName -eq ''", code_only(self.read("unmap_storage.ps1")))

    def test_lexer_can_fail(self):
        with self.assertRaises(AssertionError):
            code_only("Write-Output 'open")
        self.assertEqual(code_only("a # c\n'x)' \"y(\" <# z( #> b"), "a \n'' \"\"  b")


if __name__ == "__main__":
    unittest.main()
