/* explore_page.c - explore.html: the figures of `dgm explore` embedded
 * as data: URIs (text figures as preformatted text) with their captions, one
 * self-contained file like the report; a run's figures embedded in the report;
 * and the base64 encoder both pages use. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/error.h"
#include "dgm/io.h"
#include "explore.h"
#include "report_parts.h"

void dgm__base64(FILE *f, const unsigned char *d, size_t n)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)d[i + 1] << 8;
        if (i + 2 < n)
            v |= d[i + 2];
        fputc(a[v >> 18 & 63], f);
        fputc(a[v >> 12 & 63], f);
        fputc(i + 1 < n ? a[v >> 6 & 63] : '=', f);
        fputc(i + 2 < n ? a[v & 63] : '=', f);
    }
}

/* A text figure (a homotopy) as preformatted text with its caption. */
static int text_figure(FILE *f, const char *path, const char *name,
                       const char *caption)
{
    FILE *in = fopen(path, "rb");
    if (!in)
        return dgm_error(DGM_EIO, "%s: cannot be read", path);
    fprintf(f, "<figure id=\"%.*s\"><pre>", (int)strcspn(name, "."), name);
    char buf[4096];
    while (fgets(buf, sizeof buf, in))
        dgm__report_esc(f, buf);
    int bad = ferror(in);
    fclose(in);
    if (bad)
        return dgm_error(DGM_EIO, "%s: read error", path);
    fputs("</pre><figcaption><b>", f);
    dgm__report_esc(f, name);
    fputs("</b>: ", f);
    dgm__report_esc(f, caption);
    fputs("</figcaption></figure>\n", f);
    return 0;
}

int dgm__explore_page(const char *dir, const char *title,
                      const char *const *png, const char *const *caption, int n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/explore.html", dir);
    char *page = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&page, &len);
    if (!f)
        return dgm_error(DGM_ENOMEM, "%s: out of memory", path);
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n<title>", f);
    dgm__report_esc(f, title);
    fputs("</title>\n<style>body{font-family:sans-serif;margin:2em;color:#222}"
          "figure{margin:1.5em 0}img{image-rendering:pixelated;"
          "border:1px solid #ccc}figcaption{max-width:60em;color:#444}"
          "pre{background:#f6f6f6;padding:.5em;overflow-x:auto}"
          "</style></head><body>\n<h1>",
          f);
    dgm__report_esc(f, title);
    fputs("</h1>\n", f);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, png[i]);
        size_t nb = 0, nlen = strlen(png[i]);
        if (nlen > 4 && !strcmp(png[i] + nlen - 4, ".txt")) {
            rc = text_figure(f, p, png[i], caption[i]);
            continue;
        }
        const char *why;
        unsigned char *d = dgm__report_read_png(p, &nb, &why);
        if (!d) {
            rc = dgm_error(DGM_EIO, "%s: %s", p, why);
            break;
        }
        unsigned w = (unsigned)d[16] << 24 | (unsigned)d[17] << 16 |
                     (unsigned)d[18] << 8 | d[19];
        unsigned shown = w * 2 > 900 ? (w > 900 ? 900 : w) : w * 2;
        fprintf(f, "<figure id=\"%.*s\"><img alt=\"", (int)strcspn(png[i], "."),
                png[i]);
        dgm__report_esc(f, png[i]);
        fprintf(f, "\" style=\"width:%upx\" src=\"data:image/png;base64,",
                shown);
        dgm__base64(f, d, nb);
        fputs("\"><figcaption><b>", f);
        dgm__report_esc(f, png[i]);
        fputs("</b>: ", f);
        dgm__report_esc(f, caption[i]);
        fputs("</figcaption></figure>\n", f);
        free(d);
    }
    fputs("</body></html>\n", f);
    fclose(f);
    if (rc == 0)
        rc = dgm_write_file_atomic(path, page, len);
    free(page);
    return rc;
}

static int png_name(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 4 && !strcmp(d->d_name + n - 4, ".png");
}

int dgm__explore_embed(FILE *f, const char *run_dir, const char *label,
                       const char *heading)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/explore", run_dir);
    struct dirent **list;
    int n = scandir(dir, &list, png_name, alphasort), shown = 0;
    for (int i = 0; i < n; i++) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", dir, list[i]->d_name);
        size_t nb = 0;
        const char *why;
        unsigned char *d = dgm__report_read_png(p, &nb, &why);
        if (d) {
            if (shown++ == 0) {
                fputs(heading ? heading : "", f);
                fputs("<div class=\"samples\">\n", f);
            }
            fputs("<figure class=\"sample\"><img alt=\"", f);
            dgm__report_esc(f, list[i]->d_name);
            fputs("\" style=\"max-width:400px\" "
                  "src=\"data:image/png;base64,",
                  f);
            dgm__base64(f, d, nb);
            fputs("\"><figcaption>", f);
            dgm__report_esc(f, label);
            fputs("<br><span class=\"file\">explore/", f);
            dgm__report_esc(f, list[i]->d_name);
            fputs("</span></figcaption></figure>\n", f);
        }
        free(d);
        free(list[i]);
    }
    if (n > 0)
        free(list);
    if (shown)
        fputs("</div>\n", f);
    /* a sequence model's homotopy is text: shown as it is in explore.html */
    char p[4400];
    snprintf(p, sizeof p, "%s/homotopy.txt", dir);
    if (access(p, R_OK) == 0) {
        if (shown++ == 0)
            fputs(heading ? heading : "", f);
        if (text_figure(f, p, "homotopy.txt", label) < 0)
            shown--;
    }
    return shown;
}
