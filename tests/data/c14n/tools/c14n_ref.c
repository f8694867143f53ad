/*
 * Reference canonicaliser for tests/c14n_corpus.rs: canonicalises a document subset with
 * libxml2's own C14N code (xmlC14NExecute with a visibility callback), which `xmllint` cannot do.
 * Used only by regen.sh to produce tests/data/c14n/expected/; the Rust tests never build it.
 *
 *   c14n_ref FILE MODE NODE EXCLUDE PREFIXES
 *     MODE      c14n | c14n-wc | exc | exc-wc
 *     NODE      "/" for the document, or N: the N-th element (0-based, document order)
 *     EXCLUDE   "-" or N: that element's subtree is left out (enveloped signature)
 *     PREFIXES  "-" or a comma-separated InclusiveNamespaces PrefixList ("#default" allowed)
 *
 * The node-set is NODE's subtree (with its attributes and namespace nodes) less EXCLUDE's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/c14n.h>

struct sel {
    xmlNodePtr apex;    /* element, or the document node */
    xmlNodePtr exclude; /* may be NULL */
};

static xmlNodePtr nth_element(xmlNodePtr n, long *left) {
    for (; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) continue;
        if ((*left)-- == 0) return n;
        xmlNodePtr r = nth_element(n->children, left);
        if (r != NULL) return r;
    }
    return NULL;
}

static int visible(void *user, xmlNodePtr node, xmlNodePtr parent) {
    struct sel *s = user;
    xmlNodePtr n = node;
    if (node == NULL) return 0;
    if (node->type == XML_NAMESPACE_DECL || node->type == XML_ATTRIBUTE_NODE) n = parent;
    int inside = 0;
    for (xmlNodePtr p = n; p != NULL; p = p->parent) {
        if (s->exclude != NULL && p == s->exclude) return 0;
        if (p == s->apex) inside = 1;
        if (p->type == XML_DOCUMENT_NODE) break;
    }
    return inside;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: c14n_ref FILE MODE NODE EXCLUDE PREFIXES\n");
        return 2;
    }
    int mode, comments;
    if (!strcmp(argv[2], "c14n")) { mode = XML_C14N_1_0; comments = 0; }
    else if (!strcmp(argv[2], "c14n-wc")) { mode = XML_C14N_1_0; comments = 1; }
    else if (!strcmp(argv[2], "exc")) { mode = XML_C14N_EXCLUSIVE_1_0; comments = 0; }
    else if (!strcmp(argv[2], "exc-wc")) { mode = XML_C14N_EXCLUSIVE_1_0; comments = 1; }
    else { fprintf(stderr, "bad mode\n"); return 2; }

    xmlDocPtr doc = xmlReadFile(argv[1], NULL, XML_PARSE_NONET);
    if (doc == NULL) { fprintf(stderr, "parse failed\n"); return 1; }
    struct sel s = { (xmlNodePtr) doc, NULL };
    if (strcmp(argv[3], "/")) {
        long k = atol(argv[3]);
        s.apex = nth_element(doc->children, &k);
        if (s.apex == NULL) { fprintf(stderr, "no element %s\n", argv[3]); return 1; }
    }
    if (strcmp(argv[4], "-")) {
        long k = atol(argv[4]);
        s.exclude = nth_element(doc->children, &k);
        if (s.exclude == NULL) { fprintf(stderr, "no element %s\n", argv[4]); return 1; }
    }
    xmlChar *list[64] = { NULL };
    xmlChar **prefixes = NULL;
    if (strcmp(argv[5], "-")) {
        int i = 0;
        for (char *t = strtok(argv[5], ","); t != NULL && i < 63; t = strtok(NULL, ",")) list[i++] = (xmlChar *) t;
        prefixes = list;
    }
    xmlOutputBufferPtr out = xmlOutputBufferCreateFile(stdout, NULL);
    int rc = xmlC14NExecute(doc, visible, &s, mode, prefixes, comments, out);
    xmlOutputBufferClose(out);
    xmlFreeDoc(doc);
    if (rc < 0) { fprintf(stderr, "c14n failed\n"); return 1; }
    return 0;
}
