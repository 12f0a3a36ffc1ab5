/*
 * fake_powershell.c - a stand-in for powershell.exe under Wine (which has none), used by
 * test_scr_run.ps1_through_powershell: the test puts it at the system directory's
 * WindowsPowerShell\v1.0\powershell.exe of its Wine prefix. It writes to the file named by
 * KASM_OUT what the script runner gave it - its arguments as CommandLineToArgvW splits them
 * (one per line), its working directory, KASM_USERNAME, and the whole file after -File - and
 * exits with 3, so the test can check the command line, the private copy with its prologue
 * and the exit code's path.
 */
#include <windows.h>

#include <shellapi.h>
#include <stdio.h>
#include <stdlib.h>

static void put_w(FILE *f, const wchar_t *w)
{
    char buf[8192];
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, sizeof(buf), NULL, NULL);
    if (n > 0)
        fprintf(f, "%s\n", buf);
}

int main(void)
{
    int argc = 0;
    wchar_t **argv = CommandLineToArgvW(GetCommandLineW(), &argc);
    wchar_t out[1024], user[1024], cwd[1024];
    const wchar_t *file = NULL;
    FILE *f;

    if (!argv || !GetEnvironmentVariableW(L"KASM_OUT", out, 1024))
        return 90;
    if (!(f = _wfopen(out, L"wb")))
        return 91;
    fprintf(f, "argc %d\n", argc);
    for (int i = 1; i < argc; i++) {
        put_w(f, argv[i]);
        if (i > 1 && lstrcmpW(argv[i - 1], L"-File") == 0)
            file = argv[i];
    }
    GetCurrentDirectoryW(1024, cwd);
    fprintf(f, "cwd ");
    put_w(f, cwd);
    if (!GetEnvironmentVariableW(L"KASM_USERNAME", user, 1024))
        user[0] = L'\0';
    fprintf(f, "user ");
    put_w(f, user);
    fprintf(f, "--- file\n");
    if (file) {
        FILE *s = _wfopen(file, L"rb");
        char buf[4096];
        size_t n;
        if (s) {
            while ((n = fread(buf, 1, sizeof(buf), s)) > 0)
                fwrite(buf, 1, n, f);
            fclose(s);
        }
    }
    fclose(f);
    printf("fake powershell ran\n");
    return 3;
}
